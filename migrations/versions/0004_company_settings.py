"""company settings, settings versions, tax code and currency mappings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:48:13.039547
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('company_settings',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_company_settings_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', name=op.f('pk_company_settings'))
    )
    op.create_table('currency_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('cw_currency', sa.String(length=10), nullable=False),
    sa.Column('qbo_currency', sa.String(length=3), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_currency_mapping_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_currency_mapping')),
    sa.UniqueConstraint('company_id', 'cw_currency', name='uq_currency_mapping_cw_currency')
    )
    op.create_table('settings_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('tab', sa.String(length=20), nullable=True),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('facts', sa.JSON(), nullable=False),
    sa.Column('author', sa.String(length=254), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_settings_version_company_id_company')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_settings_version')),
    sa.UniqueConstraint('company_id', 'number', name='uq_settings_version_number')
    )
    with op.batch_alter_table('settings_version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settings_version_company_id'), ['company_id'], unique=False)

    op.create_table('tax_code_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('cw_tax_code', sa.String(length=255), nullable=False),
    sa.Column('qbo_tax_code_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_tax_code_mapping_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tax_code_mapping')),
    sa.UniqueConstraint('company_id', 'cw_tax_code', name='uq_tax_code_mapping_cw_code')
    )


def downgrade() -> None:
    op.drop_table('tax_code_mapping')
    with op.batch_alter_table('settings_version', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settings_version_company_id'))

    op.drop_table('settings_version')
    op.drop_table('currency_mapping')
    op.drop_table('company_settings')
